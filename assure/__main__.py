"""``python -m assure`` runs the ``nfv-assure`` command line."""

from assure.cli import main

main()
