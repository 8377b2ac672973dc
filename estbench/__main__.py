from estbench.cli import main

main()
