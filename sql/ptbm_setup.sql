-- Install the extension once for the whole pg_regress run.
CREATE EXTENSION ptbm;
SELECT extname, extversion FROM pg_extension WHERE extname = 'ptbm';
