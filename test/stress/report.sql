-- One of ptbm's reports (see stress_reports), over 1024 pages from a
-- random page where it takes a range.
\set r random(0, 1000)
\set f random(0, 16384 - 1024)
SELECT stress_report(:r, :f);
