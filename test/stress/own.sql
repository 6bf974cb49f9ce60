-- Each client owns page 16 + client_id: it checks that the page holds what
-- it wrote last (client_id, counter), then writes the next counter.  At the
-- end run.sh adds the counters up and compares with the transactions of
-- this script that pgbench counted.
\set own 16 + :client_id
SELECT stress_check(:counter = 0 OR ptbm_read(:own, 16, 0) = int8send(:client_id) || int8send(:counter), 'own page ' || :own || ' of client ' || :client_id || ' at counter ' || :counter);
\set counter :counter + 1
SELECT ptbm_write(:own, int8send(:client_id) || int8send(:counter), 0);
