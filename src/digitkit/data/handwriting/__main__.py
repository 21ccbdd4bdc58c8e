from digitkit.data.handwriting.builder import main

main()
