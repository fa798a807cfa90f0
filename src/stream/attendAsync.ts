// attendAsync(source, tokens, options?): the pull-based path over an AsyncIterable<Token>.
import { ConfigError } from '../core/errors.js';
import { AttendCore, checkOptions, resolveSource, type AttendOptions, type AttendSource, type Attended, type Token } from './attendInternals.js';

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
 * decoder state is the one before that token. Breaking out of the loop (return) closes the token source.
 */
export async function* attendAsync(source: AttendSource, tokens: AsyncIterable<Token> | Iterable<Token>, options?: AttendOptions): AsyncGenerator<Attended, void, undefined> {
  const opts = checkOptions(options);
  if (opts.group?.timeMs !== undefined) throw new ConfigError('attendAsync groups by count only (group.count); group.timeMs needs the rx operator attend');
  if (opts.checkpoint?.trigger !== undefined) throw new ConfigError('attendAsync has no checkpoint.trigger (rx operators only)');
  const core = new AttendCore(resolveSource(source), opts);
  const count = opts.group?.count ?? 1;
  try {
    let buffer: Token[] = [];
    const run = async function* (group: Token[]): AsyncGenerator<Attended, void, undefined> {
      const out: Attended[] = [];
      let error: { error: unknown } | null = null;
      try {
        core.group(group, (a) => out.push(a));
      } catch (e) {
        error = { error: e };
      }
      yield* out;
      if (error !== null) throw error.error;
      // backpressure on checkpoints: wait for the sink before pulling more tokens
      await core.drain();
      if (core.failed !== null) throw core.failed.error;
    };
    for await (const token of tokens) {
      buffer.push(token);
      if (buffer.length >= count) {
        const group = buffer;
        buffer = [];
        yield* run(group);
      }
    }
    if (buffer.length > 0) yield* run(buffer);
    await core.drain();
    if (core.failed !== null) throw core.failed.error;
  } finally {
    core.dispose();
  }
}
