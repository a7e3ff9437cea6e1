"""Risk/return statistics on wide daily return frames (simple returns, 252 trading days)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRADING_DAYS = 252
RISK_FREE = 0.02


def annualised_return(returns: pd.DataFrame) -> pd.Series:
    """Geometric annualised return from daily simple returns."""
    growth = (1.0 + returns.fillna(0.0)).prod()
    periods = returns.notna().sum().replace(0, np.nan)
    return growth ** (TRADING_DAYS / periods) - 1.0


def annualised_volatility(returns: pd.DataFrame) -> pd.Series:
    return returns.std(ddof=1) * np.sqrt(TRADING_DAYS)


def sharpe_ratio(returns: pd.DataFrame, risk_free: float = RISK_FREE) -> pd.Series:
    """(annualised return - risk-free) / annualised volatility."""
    return (annualised_return(returns) - risk_free) / annualised_volatility(returns)


def max_drawdown(returns: pd.DataFrame) -> pd.Series:
    """Largest peak-to-trough loss of the compounded equity curve, as a negative fraction."""
    equity = (1.0 + returns.fillna(0.0)).cumprod()
    peak = np.maximum(equity.cummax(), 1.0)
    return (equity / peak - 1.0).min()


def beta_and_correlation(
    returns: pd.DataFrame, benchmark: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """OLS beta and Pearson correlation of each column against the benchmark returns."""
    aligned = returns.loc[benchmark.index]
    bench_var = benchmark.var(ddof=1)
    beta = aligned.apply(lambda col: col.cov(benchmark) / bench_var)
    corr = aligned.apply(lambda col: col.corr(benchmark))
    return beta, corr


def summary(returns: pd.DataFrame, benchmark: pd.Series) -> pd.DataFrame:
    """One row per column: return, volatility, Sharpe, drawdown, beta, correlation."""
    beta, corr = beta_and_correlation(returns, benchmark)
    return pd.DataFrame(
        {
            "annualised_return": annualised_return(returns),
            "annualised_volatility": annualised_volatility(returns),
            "sharpe": sharpe_ratio(returns),
            "max_drawdown": max_drawdown(returns),
            "beta": beta,
            "correlation": corr,
            "observations": returns.notna().sum(),
        }
    )
