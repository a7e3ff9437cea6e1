"""Model-ready features per (date, symbol): scale-free, so one model serves every symbol."""

import pandas as pd

from tetra_assets.science.ohlcv import to_wide

FEATURES = [
    "ret_1d",
    "ret_5d",
    "ret_21d",
    "vol_21d",
    "rsi_14",
    "macd_hist_pct",
    "dist_sma_50",
    "dist_sma_200",
    "bb_position",
    "atr_pct",
    "volume_z_20",
]


def model_features(bars: pd.DataFrame, indicators: pd.DataFrame) -> pd.DataFrame:
    """One row per row of ``indicators`` (date, symbol): returns over 1 / 5 / 21 sessions
    (fractions), 21-session volatility of daily returns, RSI 14 (0-100), MACD histogram /
    close, distance to SMA 50 / 200 (fractions), position in the Bollinger band (0 at the
    lower band, 1 at the upper), ATR 14 / close and the 20-session z-score of volume.
    ``bars``: long OHLCV rows with the history the windows need (NaN where it is short)."""
    close = to_wide(bars, "close")
    volume = to_wide(bars, "volume")
    returns = close.pct_change(fill_method=None)
    volume_z = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
    derived = (
        pd.DataFrame(
            {
                "ret_1d": returns.stack(),
                "ret_5d": (close / close.shift(5) - 1.0).stack(),
                "ret_21d": (close / close.shift(21) - 1.0).stack(),
                "vol_21d": returns.rolling(21).std().stack(),
                "volume_z_20": volume_z.stack(),
            }
        )
        .rename_axis(["date", "symbol"])
        .reset_index()
    )
    ind = indicators
    table = ind[["date", "symbol"]].copy()
    table["rsi_14"] = ind["rsi_14"]
    table["macd_hist_pct"] = ind["macd_hist"] / ind["close"]
    table["dist_sma_50"] = ind["close"] / ind["sma_50"] - 1.0
    table["dist_sma_200"] = ind["close"] / ind["sma_200"] - 1.0
    table["bb_position"] = (ind["close"] - ind["bb_lower"]) / (ind["bb_upper"] - ind["bb_lower"])
    table["atr_pct"] = ind["atr_14"] / ind["close"]
    return table.merge(derived, on=["date", "symbol"], how="left")[["date", "symbol", *FEATURES]]
