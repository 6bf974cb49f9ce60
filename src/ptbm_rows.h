/*-------------------------------------------------------------------------
 *
 * ptbm_rows.h
 *	  A tuplestore writer that forms each shape of row once (ptbm_rows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_ROWS_H
#define PTBM_ROWS_H

#include "fmgr.h"
#include "nodes/execnodes.h"

typedef struct PtbmRowWriter PtbmRowWriter;

/* ptbm.row_templates: off forms every row in full */
extern bool ptbm_row_templates;

/*
 * Rows go to rsinfo's tuplestore (InitMaterializedSRF).  A row names one
 * of nshapes shapes, or -1 to be formed in full; text_col (or -1) is a text
 * column whose bytes may change from row to row within a shape.
 */
extern PtbmRowWriter *ptbm_rows_begin(ReturnSetInfo *rsinfo, int nshapes, int text_col);
extern void ptbm_rows_put(PtbmRowWriter *w, int shape, Datum *values, bool *nulls);
extern void ptbm_rows_end(PtbmRowWriter *w);

#endif							/* PTBM_ROWS_H */
