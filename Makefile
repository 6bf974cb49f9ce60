# ptbm: what the page tables of PostgreSQL backends hold.

MODULE_big = ptbm
OBJS = src/ptbm.o src/ptbm_region.o src/ptbm_ledger.o src/ptbm_proc.o src/ptbm_writes.o \
	src/ptbm_pte.o src/ptbm_access.o src/ptbm_sharing.o src/ptbm_shmem.o src/ptbm_numa.o src/ptbm_pool.o src/ptbm_pool_sql.o src/ptbm_study.o src/kmem.o
PGFILEDESC = "ptbm - per-backend page-table inspection"

EXTENSION = ptbm
DATA = ptbm--1.0.sql ptbm--1.0--1.1.sql ptbm--1.1--1.2.sql ptbm--1.2.sql ptbm--1.2--1.3.sql ptbm--1.3.sql \
	ptbm--1.3--1.4.sql ptbm--1.4.sql \
	ptbm--1.4--1.5.sql ptbm--1.5.sql

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -std=gnu11

# pg_regress and isolation tests start their own server with ptbm preloaded
REGRESS = ptbm_setup ptbm_region ptbm_pte ptbm_errors ptbm_privileges ptbm_shmem
REGRESS_OPTS = --temp-config=$(srcdir)/test/ptbm.conf --temp-instance=./tmp_check_regress
ISOLATION = shared_anon_two_backends \
	claim01_bytes_written_are_read_by_another_backend \
	claim02_fork_copies_no_pte \
	claim03_second_reader_maps_the_same_page \
	claim05_shared_anon_is_a_shmem_file \
	claim06_fault_finds_the_page_in_the_page_cache \
	claim07_dontneed_is_local_remove_is_global \
	claim09_fault_around_maps_neighbours \
	claim10_shared_page_write_is_not_copy_on_write \
	writes_tracked_per_backend
ISOLATION_OPTS = --temp-config=$(srcdir)/test/ptbm.conf --temp-instance=./tmp_check_iso

TAP_TESTS = 1

EXTRA_CLEAN = tmp_check tmp_check_iso tmp_check_private results output_iso \
	regression.diffs regression.out

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The same isolation machinery against a private_anon region.
ISOLATION_PRIVATE = private_anon_two_backends claim04_private_anon_is_copy_on_write
# run after installcheck: make installcheck installcheck-private
installcheck-private:
	$(pg_isolation_regress_installcheck) \
		--temp-config=$(srcdir)/test/ptbm_private.conf \
		--temp-instance=./tmp_check_private \
		--outputdir=output_iso_private \
		$(ISOLATION_PRIVATE)

unit:
	$(MAKE) -C test/unit check

.PHONY: installcheck-private unit
