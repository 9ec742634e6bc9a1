from allennlp_structkd.experiments.cli import main

main()
