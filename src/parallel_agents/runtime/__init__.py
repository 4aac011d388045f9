"""Where agent processes run: detached local processes (and tmux for interactive ones)."""
