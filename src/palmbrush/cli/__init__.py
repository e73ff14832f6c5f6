"""palmbrush's command line: a thin root with one module per subcommand."""
