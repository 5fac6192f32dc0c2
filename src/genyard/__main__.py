from genyard.cli import main

main()
