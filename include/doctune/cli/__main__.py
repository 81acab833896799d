"""``python -m doctune.cli``: how the console starts a training in the background."""

from doctune.cli import main

main()
