"""Mode scripts shipped with cryptodb: research, backtest, arbitrage, live, export."""
