from allennlp_structkd.commands import exit_on_sigterm
from experiments.cli import main

exit_on_sigterm()  # SIGTERM stops the runs this runner started, as Ctrl-C does
main()
