/* verdict.c - the verdict table of include/svcsensor/verdict.h, expanded, with its compile-time
 * checks: every row has every column (the X-macro's arity), labels are non-empty, ranks are
 * 0..VERDICT__COUNT-1 each exactly once (their bits cover the first VERDICT__COUNT bits:
 * VERDICT__COUNT values can only do that if they are distinct and in range), and NONE is rank 0
 * and the last id. */
#include "svcsensor/verdict.h"

#define ROW(id, label_, weight_, rank_)                                                            \
	[VERDICT_##id] = {.name = #id, .label = label_, .weight = weight_, .rank = rank_},
const struct verdict_info verdict_table[VERDICT__COUNT] = {SVC_VERDICTS(ROW)};
#undef ROW

#define BY_RANK(id, label_, weight_, rank_) [rank_] = VERDICT_##id,
const enum verdict verdict_by_rank[VERDICT__COUNT] = {SVC_VERDICTS(BY_RANK)};
#undef BY_RANK

#define RANK_BIT(id, label_, weight_, rank_) | (1ULL << (rank_))
_Static_assert(VERDICT__COUNT < 64, "ranks fit a 64-bit mask");
_Static_assert((0 SVC_VERDICTS(RANK_BIT)) == (1ULL << VERDICT__COUNT) - 1,
	       "verdict ranks must be 0..VERDICT__COUNT-1, each once");
#undef RANK_BIT

#define CHECK_ROW(id, label_, weight_, rank_)                                                      \
	_Static_assert(sizeof(label_) > 1, "verdict " #id ": empty label");                        \
	_Static_assert((rank_) < VERDICT__COUNT, "verdict " #id ": rank out of range");
SVC_VERDICTS(CHECK_ROW)
#undef CHECK_ROW

_Static_assert(VERDICT_NONE == VERDICT__COUNT - 1, "NONE is the last verdict");
