"""Agent adapters: one module per CLI, looked up by name through the registry."""

from .base import Agent, Launch, NormEvent, TurnContext, TurnEnd, TurnState
from .registry import available, get_agent

__all__ = [
    "Agent",
    "Launch",
    "NormEvent",
    "TurnContext",
    "TurnEnd",
    "TurnState",
    "available",
    "get_agent",
]
