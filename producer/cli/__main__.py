"""``python -m producer.cli``: the ``webhooks`` command."""

from producer.cli import main

main()
