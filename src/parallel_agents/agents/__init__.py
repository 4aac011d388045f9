"""Agent adapters: one module per CLI, looked up by name through the registry."""

from parallel_agents.agents.base import Agent, Launch, NormEvent, TurnContext, TurnEnd, TurnState
from parallel_agents.agents.registry import available, get_agent

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
