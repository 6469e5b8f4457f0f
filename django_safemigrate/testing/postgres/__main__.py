"""``python -m django_safemigrate.testing.postgres start|stop|status``."""

import sys

from django_safemigrate.testing.postgres.cli import main

if __name__ == "__main__":
    sys.exit(main())
