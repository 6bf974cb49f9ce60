-- Write tracking in this backend: start or reset, read and reset.
SELECT stress_track();
