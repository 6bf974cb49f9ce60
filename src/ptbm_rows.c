/*-------------------------------------------------------------------------
 *
 * ptbm_rows.c
 *	  A tuplestore writer for row functions that emit millions of rows of a
 *	  few shapes: each shape is formed once, then patched in place per row.
 *
 * ptbm_pte() emits one 15-column row per page.  Forming every row with
 * heap_form_minimal_tuple() walks all 15 attributes twice (size, then fill)
 * and was measured to be a quarter of the function's time.  Yet nearly all
 * rows of one call share their layout: the same columns are NULL, the same
 * text constants fill the same columns, and the only text that changes (the
 * address) keeps its length.  Within a layout every attribute sits at a
 * fixed offset, so a row is the shape's tuple with its fixed-width values
 * stored over the old ones.
 *
 * Nothing is assumed about the caller's rows: a row is patched onto a shape
 * only if its NULLs are the shape's, each by-reference value has the bytes
 * the shape was formed with, and the one patchable text column has the
 * shape's length.  Any other row forms a new tuple for its shape, so a wrong
 * shape hint costs time, never correctness.  ptbm.row_templates = off forms
 * every row in full; the regression tests compare both.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "funcapi.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "ptbm_rows.h"

bool		ptbm_row_templates = true;

/* one by-value attribute of a shape: where it sits in the tuple, its width */
typedef struct PtbmRowPatch
{
	uint32		off;			/* from the start of the minimal tuple */
	int16		att;
	int16		len;			/* 1, 2, 4 or 8 */
} PtbmRowPatch;

typedef struct PtbmRowShape
{
	char	   *buf;			/* NULL: not formed yet; else the tuple
								 * MINIMAL_TUPLE_OFFSET bytes in, as a heap
								 * tuple would hold it */
	MinimalTuple tup;			/* in buf; each row is patched in place */
	Size		buf_size;
	bool	   *nulls;			/* the NULLs it was formed with */
	uint32	   *off;			/* byte offset of each attribute in tup */
	PtbmRowPatch *patch;		/* its non-NULL by-value attributes: */
	int			n1;				/* first the 1-byte ones (bool), */
	int			n8;				/* then the Datum-sized ones (int8), */
	int			npatch;			/* then the others; in all */
	int		   *byref;			/* its non-NULL by-reference ones, but text_col */
	int			nbyref;
	int			text_len;		/* data bytes of the patchable text column */
	int			text_hdr;		/* its header bytes in tup (1 or 4) */
} PtbmRowShape;

struct PtbmRowWriter
{
	Tuplestorestate *store;
	TupleDesc	desc;
	int			natts;
	int			text_col;		/* patched in place; -1: none */
	bool		enabled;
	MemoryContext cxt;			/* the shapes */
	int			nshapes;
	PtbmRowShape *shapes;
};

PtbmRowWriter *
ptbm_rows_begin(ReturnSetInfo *rsinfo, int nshapes, int text_col)
{
	PtbmRowWriter *w = palloc0(sizeof(PtbmRowWriter));
	TupleDesc	desc = rsinfo->setDesc;

	w->store = rsinfo->setResult;
	w->desc = desc;
	w->natts = desc->natts;
	w->text_col = text_col;
	w->enabled = ptbm_row_templates;
	w->cxt = AllocSetContextCreate(CurrentMemoryContext, "ptbm row shapes",
								   ALLOCSET_SMALL_SIZES);
	w->nshapes = nshapes;
	w->shapes = MemoryContextAllocZero(w->cxt, nshapes * sizeof(PtbmRowShape));

	/* the patched column must be a plain varlena (text, bytea, ...) */
	if (text_col >= 0 &&
		(text_col >= w->natts || TupleDescAttr(desc, text_col)->attlen != -1))
		w->text_col = -1;
	return w;
}

/* a varlena stored in line and uncompressed (not toasted, not expanded) */
static inline bool
ptbm_rows_plain(const char *v)
{
	return VARATT_IS_SHORT(v) || VARATT_IS_4B_U(v);
}

/* (Re)forms a shape from a row and finds where each attribute landed. */
static void
ptbm_rows_form(PtbmRowWriter *w, PtbmRowShape *s, Datum *values, bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(w->cxt);
	MinimalTuple formed;
	char	   *tp;
	bits8	   *bp;
	bool		hasnulls;
	uint32		off = 0;

	if (s->nulls == NULL)
	{
		s->nulls = palloc(w->natts * sizeof(bool));
		s->off = palloc(w->natts * sizeof(uint32));
		s->patch = palloc(w->natts * sizeof(PtbmRowPatch));
		s->byref = palloc(w->natts * sizeof(int));
	}
	s->nbyref = s->npatch = s->n1 = s->n8 = 0;
	formed = heap_form_minimal_tuple(w->desc, values, nulls);
	if (MINIMAL_TUPLE_OFFSET + formed->t_len > s->buf_size)
	{
		if (s->buf)
			pfree(s->buf);
		s->buf_size = Max(MINIMAL_TUPLE_OFFSET + formed->t_len, 128);
		s->buf = palloc0(s->buf_size);
	}
	s->tup = (MinimalTuple) (s->buf + MINIMAL_TUPLE_OFFSET);
	memcpy(s->tup, formed, formed->t_len);
	pfree(formed);
	memcpy(s->nulls, nulls, w->natts * sizeof(bool));

	/* the attribute walk of heap_deform_tuple, recording offsets */
	tp = (char *) s->tup + s->tup->t_hoff - MINIMAL_TUPLE_OFFSET;
	bp = s->tup->t_bits;
	hasnulls = (s->tup->t_infomask & HEAP_HASNULL) != 0;
	for (int i = 0; i < w->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(w->desc, i);

		s->off[i] = 0;
		if (hasnulls && att_isnull(i, bp))
			continue;
		if (att->attlen == -1)
			off = att_align_pointer(off, att->attalign, -1, tp + off);
		else
			off = att_align_nominal(off, att->attalign);
		s->off[i] = (uint32) ((tp + off) - (char *) s->tup);
		if (!att->attbyval && i != w->text_col)
			s->byref[s->nbyref++] = i;
		off = att_addlength_pointer(off, att->attlen, tp + off);
	}
	/* the by-value attributes: 1-byte ones first, then Datum-sized, then the rest */
	for (int pass = 0; pass < 3; pass++)
	{
		for (int i = 0; i < w->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(w->desc, i);
			int			kind = att->attlen == 1 ? 0 : att->attlen == sizeof(Datum) ? 1 : 2;

			if (nulls[i] || !att->attbyval || kind != pass)
				continue;
			s->patch[s->npatch].off = s->off[i];
			s->patch[s->npatch].att = i;
			s->patch[s->npatch].len = att->attlen;
			s->npatch++;
		}
		if (pass == 0)
			s->n1 = s->npatch;
		else if (pass == 1)
			s->n8 = s->npatch - s->n1;
	}
	s->text_len = -1;			/* no row fits a shape with toasted text */
	if (w->text_col >= 0 && !nulls[w->text_col] &&
		ptbm_rows_plain(DatumGetPointer(values[w->text_col])))
	{
		char	   *t = (char *) s->tup + s->off[w->text_col];

		s->text_hdr = VARATT_IS_SHORT(t) ? VARHDRSZ_SHORT : VARHDRSZ;
		s->text_len = VARSIZE_ANY_EXHDR(t);
	}
	MemoryContextSwitchTo(old);
}

/* Whether two rows have the same NULLs, eight columns at a time. */
static inline bool
ptbm_rows_same_nulls(const bool *a, const bool *b, int n)
{
	uint64		x,
				y;
	int			i = 0;

	if (n < 8)
	{
		for (; i < n; i++)
			if (a[i] != b[i])
				return false;
		return true;
	}
	for (; i + 8 <= n; i += 8)
	{
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return false;
	}
	/* the last (overlapping) eight */
	memcpy(&x, a + n - 8, 8);
	memcpy(&y, b + n - 8, 8);
	return x == y;
}

/* Whether a row fits a formed shape (see the file header). */
static inline bool
ptbm_rows_fit(PtbmRowWriter *w, PtbmRowShape *s, Datum *values, bool *nulls)
{
	if (s->buf == NULL)
		return false;
	if (!ptbm_rows_same_nulls(nulls, s->nulls, w->natts))
		return false;
	/* by-reference values: the same bytes as the shape's */
	for (int k = 0; k < s->nbyref; k++)
	{
		int			i = s->byref[k];
		int16		len = TupleDescAttr(w->desc, i)->attlen;
		const char *v = DatumGetPointer(values[i]);
		const char *t = (char *) s->tup + s->off[i];

		if (len > 0)
		{
			if (memcmp(v, t, len) != 0)
				return false;
		}
		else if (len == -1 && ptbm_rows_plain(v))
		{
			if (VARSIZE_ANY_EXHDR(v) != VARSIZE_ANY_EXHDR(t) ||
				memcmp(VARDATA_ANY(v), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(v)) != 0)
				return false;
		}
		else
			return false;
	}
	/* the patchable text: plain, of the shape's length */
	if (w->text_col >= 0 && !nulls[w->text_col])
	{
		const char *v = DatumGetPointer(values[w->text_col]);

		if (!ptbm_rows_plain(v) || VARSIZE_ANY_EXHDR(v) != s->text_len)
			return false;
	}
	return true;
}

void
ptbm_rows_put(PtbmRowWriter *w, int shape, Datum *values, bool *nulls)
{
	PtbmRowShape *s;
	char	   *restrict tup;
	const PtbmRowPatch *restrict patch;
	const Datum *restrict vals = values;
	int			n1,
				n18,
				npatch,
				k;
	HeapTupleData htup;

	if (!w->enabled || shape < 0 || shape >= w->nshapes)
	{
		tuplestore_putvalues(w->store, w->desc, values, nulls);
		return;
	}
	s = &w->shapes[shape];
	if (!ptbm_rows_fit(w, s, values, nulls))
		ptbm_rows_form(w, s, values, nulls);

	/*
	 * The shape's tuple takes this row's by-value attributes and text bytes
	 * in place: everything else in it is already this row's.  One loop per
	 * width, reading through restrict pointers, so that the stores into the
	 * tuple do not make the compiler reload the list on every iteration.
	 */
	tup = (char *) s->tup;
	patch = s->patch;
	n1 = s->n1;
	n18 = s->n1 + s->n8;
	npatch = s->npatch;
	for (k = 0; k < n1; k++)
		tup[patch[k].off] = DatumGetChar(vals[patch[k].att]);
	for (; k < n18; k++)
		memcpy(tup + patch[k].off, &vals[patch[k].att], sizeof(Datum));
	for (; k < npatch; k++)
		store_att_byval(tup + patch[k].off, vals[patch[k].att], patch[k].len);
	if (w->text_col >= 0 && !nulls[w->text_col])
		memcpy(tup + s->off[w->text_col] + s->text_hdr,
			   VARDATA_ANY(DatumGetPointer(values[w->text_col])), s->text_len);

	/*
	 * buf holds the row as a heap tuple whose header starts
	 * MINIMAL_TUPLE_OFFSET bytes before the minimal tuple, the layout
	 * htup_details.h defines them by; tuplestore_puttuple() copies the
	 * minimal part out of it, as tuplestore_putvalues() would have formed it.
	 */
	htup.t_len = s->tup->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) s->buf;
	ItemPointerSetInvalid(&htup.t_self);
	htup.t_tableOid = InvalidOid;
	tuplestore_puttuple(w->store, &htup);
}

void
ptbm_rows_end(PtbmRowWriter *w)
{
	MemoryContextDelete(w->cxt);
	pfree(w);
}
