"""Great Expectations suites, one module per raw table (``build_suite(ctx)``); shipped inside the package."""
