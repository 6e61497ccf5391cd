"""lobra: the command-line entry point. The product lives in costmodel/, traces/, policies/, sim/, executor/,
analysis/; this package only parses arguments and calls them."""

__version__ = "0.1.0"
