"""Cases of the fault battery (``python benchmarks/fault_battery.py``): one ``cases_<area>.py`` per area."""
