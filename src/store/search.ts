import type { Pool } from 'pg';
import type { SearchResult } from '../contract.js';
import { NotFoundProblem, ValidationProblem } from '../errors.js';
import { THREAD_NOT_FOUND } from './membership.js';

/**
 * The query in the `postline_search` configuration (unaccented, lowercased words; see
 * sql/006_chat_features.sql). `websearch_to_tsquery` takes what people type into search boxes:
 * words (all must match), "quoted phrases", `or`, and `-word` to exclude; it never fails on syntax.
 */
const QUERY = `websearch_to_tsquery('postline_search', $1)`;

/** Chat messages are short: up to this many characters, the snippet is the whole text. */
const WHOLE_TEXT_UP_TO = 240;
const MARKS = 'StartSel=<mark>, StopSel=</mark>';

/**
 * The matching messages, newest first. The text is escaped before ts_headline marks the matches,
 * so a snippet is safe to show as HTML. Short texts are marked whole; longer ones give up to two
 * fragments around the matches. The match must use the index's very expression
 * (`to_tsvector('postline_search', body)` over messages not deleted; test/search.test.ts checks
 * that the planner can use the index for it). Snippets are made for the page only, after the limit.
 */
export const SEARCH_MESSAGES = `
  SELECT postline_message_json(hit) AS message,
         ts_headline('postline_search', replace(replace(replace(hit.body, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), ${QUERY},
                     CASE WHEN length(hit.body) <= ${WHOLE_TEXT_UP_TO} THEN '${MARKS}, HighlightAll=true'
                          ELSE '${MARKS}, MinWords=12, MaxWords=30, MaxFragments=2, FragmentDelimiter=" … "' END) AS snippet
    FROM (SELECT m.* FROM messages m
           WHERE m.thread_id IN (SELECT tm.thread_id FROM thread_members tm WHERE tm.user_id = $2)
             AND ($3::bigint IS NULL OR m.thread_id = $3)
             AND ($4::bigint IS NULL OR m.id < $4)
             AND m.deleted_at IS NULL
             AND to_tsvector('postline_search', m.body) @@ ${QUERY}
           ORDER BY m.id DESC
           LIMIT $5) hit
   ORDER BY hit.id DESC`;

/**
 * Full-text search over the messages of the caller's threads (or of `threadId`, which must be one
 * of them: else 404), deleted messages left out, newest first. `before`: the id of the last result
 * of the previous page. A query without any word to look for (only punctuation, say) is 400.
 */
export async function searchMessages(
  pool: Pool,
  input: { userId: string; q: string; threadId?: string | undefined; before?: string | undefined; limit: number },
): Promise<{ results: SearchResult[]; hasMore: boolean }> {
  const { rows: check } = await pool.query<{ words: number; member: boolean }>(
    `SELECT numnode(${QUERY}) AS words,
            $3::bigint IS NULL OR EXISTS (SELECT 1 FROM thread_members WHERE thread_id = $3 AND user_id = $2) AS member`,
    [input.q, input.userId, input.threadId ?? null],
  );
  if (!check[0]!.member) throw new NotFoundProblem(THREAD_NOT_FOUND);
  if (check[0]!.words === 0) throw new ValidationProblem([{ path: 'q', message: 'has no words to search for' }]);
  const { rows } = await pool.query<SearchResult>(SEARCH_MESSAGES, [input.q, input.userId, input.threadId ?? null, input.before ?? null, input.limit + 1]);
  return { results: rows.slice(0, input.limit), hasMore: rows.length > input.limit };
}
