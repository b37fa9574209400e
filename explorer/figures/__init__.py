"""Pictures: the one colour rule, the plotly kit, every figure of the pages, the CLI's PNGs."""
