"""ECG image digitizer: image -> calibrated 12-lead WFDB record (work in progress)."""
