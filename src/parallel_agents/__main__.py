from parallel_agents.cli import main

main()
