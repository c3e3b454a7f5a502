from cram_harness.cli import main

main()
