from dscall.cli import main

main()
