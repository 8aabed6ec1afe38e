"""`python -m db_tf ...` = the `db-tf` command."""
import sys

from db_tf.cli import main

sys.exit(main())
