"""Pure statistics over per-variant sufficient statistics: no Django import.

The database reduces every experiment to, per variant, the number of users and the
sums and cross-products of a few per-user variables (`Moments`). Everything here is
a function of those numbers, so an analysis of a billion events costs the same in
Python as one of a thousand.
"""
