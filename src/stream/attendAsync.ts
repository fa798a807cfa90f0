// attendAsync(source, tokens, options?): the pull-based path over an AsyncIterable<Token>.
import { ConfigError } from '../core/errors.js';
import { AttendCore } from './attendCore.js';
import { checkOptions, resolveSource } from './options.js';
import type { AttendOptions, AttendSource, Attended, Token } from './types.js';

/**
 * Run one step of the session, yield its outputs, then (once the consumer asked for more) take the
 * checkpoint if one is due and wait for the sink: backpressure on checkpoint writes.
 */
async function* deliver(core: AttendCore, run: (emit: (a: Attended) => void) => void): AsyncGenerator<Attended, void, undefined> {
  const out: Attended[] = [];
  run((a) => out.push(a)); // a refused token throws here: nothing of this step was consumed
  yield* out;
  core.checkpoints.ifDue();
  await core.checkpoints.drain();
  if (core.checkpoints.failed !== null) throw core.checkpoints.failed.error;
}

/**
 * When to use which:
 * - `attend` (RxJS) when tokens are pushed at you (events, sockets, a model emitting as it goes) and you want
 *   to compose with other operators, group by time, or fan out. RxJS has no backpressure: a fast producer
 *   and a slow consumer build up in memory (and checkpoint writes queue up behind the stream).
 * - `attendAsync` when you pull tokens (files, async generators, streams read with for await): it reads the
 *   next token only when the consumer asks for the next output, and it waits for each checkpoint write
 *   before continuing, so memory stays bounded whatever the speeds. Grouping here is by count only (no
 *   timers): `group.count` tokens are pulled and run through decoder.chunk.
 * Both share AttendCore, so outputs, errors and checkpoints are the same.
 *
 * An invalid token makes the generator throw the typed error after yielding every output before it; the
 * decoder state is the one before that token. Breaking out of the loop (return) closes the token source;
 * tokens of an unfinished group are then never fed, and no checkpoint is taken after it.
 */
export async function* attendAsync(source: AttendSource, tokens: AsyncIterable<Token> | Iterable<Token>, options?: AttendOptions): AsyncGenerator<Attended, void, undefined> {
  const opts = checkOptions(options);
  if (opts.group?.timeMs !== undefined) throw new ConfigError('attendAsync groups by count only (group.count); group.timeMs needs the rx operator attend');
  if (opts.checkpoint?.trigger !== undefined) throw new ConfigError('attendAsync has no checkpoint.trigger (rx operators only)');
  const core = new AttendCore(resolveSource(source), opts);
  const count = opts.group?.count ?? 1;
  const runGroup = (emit: (a: Attended) => void): void => core.runGroup(emit);
  try {
    for await (const token of tokens) {
      if (count === 1) {
        yield* deliver(core, (emit) => core.step(token, emit));
        continue;
      }
      let refused: { error: unknown } | null = null;
      let size = 0;
      try {
        size = core.add(token);
      } catch (error) {
        refused = { error };
      }
      // an invalid token closes the group early: the tokens before it run, then its error
      if (refused !== null || size >= count) yield* deliver(core, runGroup);
      if (refused !== null) throw refused.error;
    }
    yield* deliver(core, runGroup);
  } finally {
    core.dispose();
  }
}
