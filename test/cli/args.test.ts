// The CLI's own argument parser (src/cli/args.ts, in place of commander): how values are taken, defaults and
// their sources, negated flags, repeated options, conflicts, and commander's one-line messages.
import { describe, expect, it } from 'vitest';
import { Command, CommanderError, InvalidArgumentError, Option } from '../../src/cli/args.js';

function program(): { p: Command; got: unknown[]; err: string[]; out: string[] } {
  const got: unknown[] = [];
  const err: string[] = [];
  const out: string[] = [];
  const p = new Command().name('tool').configureOutput({ writeErr: (t) => void err.push(t), writeOut: (t) => void out.push(t) });
  const int = (t: string): number => {
    if (!/^\d+$/.test(t)) throw new InvalidArgumentError(`expected an integer, got "${t}"`);
    return Number(t);
  };
  p.command('go')
    .argument('<file>', 'a file')
    .requiredOption('--n <k>', 'count', int)
    .option('--list <x>', 'repeatable', (v: string, prev: unknown) => [...((prev as string[] | undefined) ?? []), v])
    .option('--bias <b>', 'a value that may start with -')
    .option('--no-echo', 'no echo')
    .option('--level <l>', 'with a default', int, 3)
    .addOption(new Option('--mode <m>', 'a choice').choices(['a', 'b']).default('a'))
    .addOption(new Option('--from <f>', 'conflicts with --level').conflicts('level'))
    .action((file: string, o: Record<string, unknown>, cmd: Command) => void got.push(file, o, cmd.getOptionValueSource('level'), cmd.getOptionValueSource('mode')));
  return { p, got, err, out };
}

async function fails(args: string[]): Promise<string> {
  const t = program();
  const e = await t.p.parseAsync(args).then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(CommanderError);
  expect((e as CommanderError).exitCode).toBe(1);
  expect(t.err).toHaveLength(1);
  return t.err[0]!;
}

describe('the CLI argument parser', () => {
  it('takes values after the flag or after =, even empty or starting with -; defaults and sources; --no-x; repeats', async () => {
    const t = program();
    await t.p.parseAsync(['go', 'f.txt', '--n', '5', '--bias=-inf,0', '--list', '', '--list', '-x', '--no-echo', '--mode', 'b']);
    expect(t.got).toEqual(['f.txt', { n: 5, bias: '-inf,0', list: ['', '-x'], echo: false, level: 3, mode: 'b' }, 'default', 'cli']);
    const u = program();
    await u.p.parseAsync(['go', '--n=1', '--', '--not-an-option']);
    expect(u.got[0]).toBe('--not-an-option');
    expect(u.got[1]).toEqual({ n: 1, echo: true, level: 3, mode: 'a' });
  });

  it("usage errors are commander's one-liners", async () => {
    expect(await fails(['go', 'f', '--n', 'x'])).toBe(`error: option '--n <k>' argument 'x' is invalid. expected an integer, got "x"\n`);
    expect(await fails(['go', 'f', '--n', '1', '--mode', 'c'])).toBe(`error: option '--mode <m>' argument 'c' is invalid. Allowed choices are a, b.\n`);
    expect(await fails(['go', 'f'])).toBe(`error: required option '--n <k>' not specified\n`);
    expect(await fails(['go', 'f', '--n'])).toBe(`error: option '--n <k>' argument missing\n`);
    expect(await fails(['go', 'f', '--n', '1', '--what'])).toBe(`error: unknown option '--what'\n`);
    expect(await fails(['go', '--n', '1'])).toBe(`error: missing required argument 'file'\n`);
    expect(await fails(['go', 'f', 'g', '--n', '1'])).toBe(`error: too many arguments for 'go'. Expected 1 argument but got 2.\n`);
    expect(await fails(['go', 'f', '--n', '1', '--from', 'x', '--level', '2'])).toBe(`error: option '--from <f>' cannot be used with option '--level <l>'\n`);
    expect(await fails(['stop'])).toBe(`error: unknown command 'stop'\n`);
    // a default does not conflict
    const t = program();
    await t.p.parseAsync(['go', 'f', '--n', '1', '--from', 'x']);
    expect(t.got[1]).toMatchObject({ from: 'x', level: 3 });
  });

  it('--help prints usage and options (exit code 0); no command prints help as an error', async () => {
    const t = program();
    const e = (await t.p.parseAsync(['go', '--help']).catch((x: unknown) => x)) as CommanderError;
    expect(e.exitCode).toBe(0);
    expect(t.out.join('')).toMatch(/^Usage: tool go \[options\] <file>\n[\s\S]*--level <l> +with a default \(default: 3\)\n[\s\S]*--mode <m> +a choice \(choices: "a", "b", default: "a"\)/);
    const u = program();
    const none = (await u.p.parseAsync([]).catch((x: unknown) => x)) as CommanderError;
    expect(none.exitCode).toBe(1);
    expect(u.err.join('')).toMatch(/^Usage: tool \[options\] \[command\]/);
  });
});
