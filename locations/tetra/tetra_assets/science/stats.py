"""Risk/return statistics on wide daily return frames (simple returns, 252 trading days)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

TRADING_DAYS = 252
RISK_FREE = 0.02


def _columns(returns: pd.DataFrame, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=returns.columns)


def annualised_return(returns: pd.DataFrame) -> pd.Series:
    """Geometric annualised return from daily simple returns (missing days skipped)."""
    x = returns.to_numpy(dtype=float)
    growth = np.prod(1.0 + np.nan_to_num(x), axis=0)
    periods = (~np.isnan(x)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _columns(
            returns, growth ** (TRADING_DAYS / np.where(periods > 0, periods, np.nan)) - 1.0
        )


def annualised_volatility(returns: pd.DataFrame) -> pd.Series:
    """Sample standard deviation (ddof=1) of daily returns times sqrt(252); NaN below 2 days."""
    x = returns.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with fewer than 2 days
        return _columns(returns, np.nanstd(x, axis=0, ddof=1) * np.sqrt(TRADING_DAYS))


def sharpe_ratio(returns: pd.DataFrame, risk_free: float = RISK_FREE) -> pd.Series:
    """(annualised return - risk-free) / annualised volatility."""
    return (annualised_return(returns) - risk_free) / annualised_volatility(returns)


def max_drawdown(returns: pd.DataFrame) -> pd.Series:
    """Largest peak-to-trough loss of the compounded equity curve, as a negative fraction."""
    equity = np.cumprod(1.0 + np.nan_to_num(returns.to_numpy(dtype=float)), axis=0)
    peak = np.maximum(np.maximum.accumulate(equity, axis=0), 1.0)
    return _columns(returns, (equity / peak - 1.0).min(axis=0, initial=0.0))


def beta_and_correlation(
    returns: pd.DataFrame, benchmark: pd.Series | pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """OLS beta and Pearson correlation of each column against the benchmark, each over the
    days where both are observed (all columns at once). ``benchmark``: one series for every
    column, or a frame shaped like ``returns`` (a benchmark per column)."""
    x = returns.loc[benchmark.index].to_numpy(dtype=float)
    b = benchmark.to_numpy(dtype=float)
    b = np.broadcast_to(b[:, None] if b.ndim == 1 else b, x.shape)
    both = ~np.isnan(x) & ~np.isnan(b)
    n = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(both, x - np.where(both, x, 0.0).sum(0) / n, 0.0)
        db = np.where(both, b - np.where(both, b, 0.0).sum(0) / n, 0.0)
        cov, var_x, var_b = (dx * db).sum(0), (dx * dx).sum(0), (db * db).sum(0)
        beta = np.where(n > 1, cov / var_b, np.nan)
        corr = np.where(n > 1, cov / np.sqrt(var_x * var_b), np.nan)
    return pd.Series(beta, index=returns.columns), pd.Series(corr, index=returns.columns)


def summary(returns: pd.DataFrame, benchmark: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """One row per column: return, volatility, Sharpe, drawdown, beta, correlation."""
    beta, corr = beta_and_correlation(returns, benchmark)
    ann_return, ann_volatility = annualised_return(returns), annualised_volatility(returns)
    return pd.DataFrame(
        {
            "annualised_return": ann_return,
            "annualised_volatility": ann_volatility,
            "sharpe": (ann_return - RISK_FREE) / ann_volatility,  # sharpe_ratio, reusing both
            "max_drawdown": max_drawdown(returns),
            "beta": beta,
            "correlation": corr,
            "observations": returns.notna().sum(),
        }
    )
