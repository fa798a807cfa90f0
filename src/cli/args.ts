// The CLI's argument parser: the part of commander's API this CLI uses (commands, options with parsers,
// defaults, choices, conflicts, required options, one positional argument, help and version), with commander's
// messages, in one small file with no dependency, so that installing the library does not install a CLI
// framework. Values are taken as commander takes them: `--opt value` (even when the value starts with '-' or is
// empty) or `--opt=value`; `--no-x` sets x to false; only -h and -V are short flags.
//
// Errors: a usage error writes one line to the error output and throws CommanderError (exitCode 1 as commander
// does; main() maps it to exit 2); --help and --version write to the output and throw CommanderError with exitCode 0.

/** Thrown after a usage error was printed, or after help/version (exitCode 0). */
export class CommanderError extends Error {
  readonly exitCode: number;
  readonly code: string;
  constructor(exitCode: number, code: string, message: string) {
    super(message);
    this.name = 'CommanderError';
    this.exitCode = exitCode;
    this.code = code;
  }
}

/** Thrown by an option's parser (or a command) for a bad value: reported as a usage error. */
export class InvalidArgumentError extends CommanderError {
  constructor(message: string) {
    super(1, 'commander.invalidArgument', message);
    this.name = 'InvalidArgumentError';
  }
}

type Parser = (value: string, previous: unknown) => unknown;
type Source = 'default' | 'cli';

export class Option {
  readonly flags: string;
  readonly description: string;
  /** the long name without dashes (and without 'no-' for a negated flag) */
  readonly long: string;
  readonly short: string | null;
  /** camelCase key in the options object */
  readonly attribute: string;
  /** takes a value (`<value>` in the flags) */
  readonly takesValue: boolean;
  readonly negate: boolean;
  mandatory = false;
  defaultValue: unknown = undefined;
  parser: Parser | null = null;
  allowed: readonly string[] | null = null;
  conflictsWith: string[] = [];

  constructor(flags: string, description = '') {
    this.flags = flags;
    this.description = description;
    const m = /^(?:-(\w),\s*)?--([\w-]+)(?:\s+<[^>]+>)?$/.exec(flags.trim());
    if (m === null) throw new Error(`unsupported option flags: ${flags}`);
    this.short = m[1] ?? null;
    this.negate = m[2]!.startsWith('no-');
    this.long = this.negate ? m[2]!.slice(3) : m[2]!;
    this.attribute = this.long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    this.takesValue = flags.includes('<');
    if (this.negate) this.defaultValue = true;
  }

  default(value: unknown): this {
    this.defaultValue = value;
    return this;
  }

  argParser(fn: Parser): this {
    this.parser = fn;
    return this;
  }

  choices(values: readonly string[]): this {
    this.allowed = values;
    return this;
  }

  conflicts(names: string | string[]): this {
    this.conflictsWith = this.conflictsWith.concat(names);
    return this;
  }

  /** The flags as the user typed the long form: "--seed <s>" */
  get name(): string {
    return `--${this.negate ? 'no-' : ''}${this.long}`;
  }
}

interface Output {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- actions take (argument?, options, command) of their own types
type Action = (...args: any[]) => unknown;

export class Command {
  private nameText = '';
  private descriptionText = '';
  private versionText: string | null = null;
  private versionOption: Option | null = null;
  private readonly options: Option[] = [];
  private readonly commands: Command[] = [];
  private argumentSpec: { name: string; description: string } | null = null;
  private actionFn: Action | null = null;
  private parent: Command | null = null;
  private hidden = false;
  private unknownOptionsAllowed = false;
  private excessArgumentsAllowed = false;
  private output: Output | null = null;
  private values: Record<string, unknown> = {};
  private sources: Record<string, Source> = {};

  constructor(name = '') {
    this.nameText = name;
  }

  name(text: string): this {
    this.nameText = text;
    return this;
  }

  description(text: string): this {
    this.descriptionText = text;
    return this;
  }

  version(text: string, flags = '-V, --version', description = 'output the version number'): this {
    this.versionText = text;
    this.versionOption = new Option(flags, description);
    return this;
  }

  /** Commands always throw (CommanderError) instead of exiting: kept for commander's API. */
  exitOverride(): this {
    return this;
  }

  configureOutput(o: Output): this {
    this.output = o;
    return this;
  }

  command(name: string, opts: { hidden?: boolean } = {}): Command {
    const c = new Command(name);
    c.parent = this;
    c.hidden = opts.hidden === true;
    this.commands.push(c);
    return c;
  }

  argument(name: string, description = ''): this {
    this.argumentSpec = { name: name.replace(/[<>[\]]/g, ''), description };
    return this;
  }

  allowUnknownOption(): this {
    this.unknownOptionsAllowed = true;
    return this;
  }

  allowExcessArguments(): this {
    this.excessArgumentsAllowed = true;
    return this;
  }

  addOption(o: Option): this {
    this.options.push(o);
    return this;
  }

  option(flags: string, description: string, parserOrDefault?: unknown, defaultValue?: unknown): this {
    const o = new Option(flags, description);
    if (typeof parserOrDefault === 'function') {
      o.argParser(parserOrDefault as Parser);
      if (defaultValue !== undefined) o.default(defaultValue);
    } else if (parserOrDefault !== undefined) o.default(parserOrDefault);
    return this.addOption(o);
  }

  requiredOption(flags: string, description: string, parserOrDefault?: unknown, defaultValue?: unknown): this {
    this.option(flags, description, parserOrDefault, defaultValue);
    this.options[this.options.length - 1]!.mandatory = true;
    return this;
  }

  action(fn: Action): this {
    this.actionFn = fn;
    return this;
  }

  /** Where the value of an option came from: 'cli', 'default', or undefined (unset). */
  getOptionValueSource(attribute: string): Source | undefined {
    return this.sources[attribute];
  }

  opts(): Record<string, unknown> {
    return { ...this.values };
  }

  /** Print `message` (one line) to the error output and throw a CommanderError. */
  error(message: string, o: { exitCode?: number; code?: string } = {}): never {
    this.out().writeErr(`${message}\n`);
    throw new CommanderError(o.exitCode ?? 1, o.code ?? 'commander.error', message);
  }

  private out(): Output {
    for (let c: Command | null = this; c !== null; c = c.parent) if (c.output !== null) return c.output;
    return { writeOut: (t) => void process.stdout.write(t), writeErr: (t) => void process.stderr.write(t) };
  }

  private fullName(): string {
    return this.parent === null ? this.nameText : `${this.parent.fullName()} ${this.nameText}`;
  }

  /** argv: the arguments after the program (from: 'user'). */
  async parseAsync(argv: readonly string[], _o: { from: 'user' } = { from: 'user' }): Promise<this> {
    const args = [...argv];
    if (this.commands.length > 0) {
      const first = args[0];
      if (first === undefined) {
        this.out().writeErr(this.helpText());
        throw new CommanderError(1, 'commander.help', '(outputHelp)');
      }
      if (first === '-h' || first === '--help') return this.showHelp();
      if (this.versionOption !== null && (first === `--${this.versionOption.long}` || first === `-${this.versionOption.short}`)) {
        this.out().writeOut(`${this.versionText}\n`);
        throw new CommanderError(0, 'commander.version', this.versionText ?? '');
      }
      if (first === 'help') {
        const target = this.commands.find((c) => c.nameText === args[1]);
        return target ? target.showHelp() : this.showHelp();
      }
      if (first.startsWith('-')) this.error(`error: unknown option '${first}'`, { code: 'commander.unknownOption' });
      const sub = this.commands.find((c) => c.nameText === first);
      if (sub === undefined) this.error(`error: unknown command '${first}'`, { code: 'commander.unknownCommand' });
      await sub.parseAsync(args.slice(1));
      return this;
    }
    this.values = {};
    this.sources = {};
    for (const o of this.options) {
      if (o.defaultValue !== undefined) {
        this.values[o.attribute] = o.defaultValue;
        this.sources[o.attribute] = 'default';
      }
    }
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--') {
        positional.push(...args.slice(i + 1));
        break;
      }
      if (a === '-h' || a === '--help') return this.showHelp();
      if (!a.startsWith('-') || a === '-') {
        positional.push(a);
        continue;
      }
      const eq = a.indexOf('=');
      const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
      const o = this.options.find((x) => x.name === flag || (x.short !== null && `-${x.short}` === flag));
      if (o === undefined) {
        if (this.unknownOptionsAllowed) continue;
        this.error(`error: unknown option '${flag}'`, { code: 'commander.unknownOption' });
      }
      if (!o.takesValue) {
        if (flag !== a) this.error(`error: option '${o.flags}' does not take a value`, { code: 'commander.excessArguments' });
        this.set(o, !o.negate);
        continue;
      }
      let value: string;
      if (flag !== a) value = a.slice(eq + 1);
      else {
        if (i + 1 >= args.length) this.error(`error: option '${o.flags}' argument missing`, { code: 'commander.optionMissingArgument' });
        value = args[++i]!;
      }
      if (o.allowed !== null && !o.allowed.includes(value)) {
        this.error(`error: option '${o.flags}' argument '${value}' is invalid. Allowed choices are ${o.allowed.join(', ')}.`, { code: 'commander.invalidArgument' });
      }
      let parsed: unknown = value;
      if (o.parser !== null) {
        try {
          parsed = o.parser(value, this.sources[o.attribute] === 'cli' ? this.values[o.attribute] : o.defaultValue);
        } catch (e) {
          if (e instanceof InvalidArgumentError) this.error(`error: option '${o.flags}' argument '${value}' is invalid. ${e.message}`, { code: 'commander.invalidArgument' });
          throw e;
        }
      }
      this.set(o, parsed);
    }
    for (const o of this.options) {
      if (o.mandatory && this.values[o.attribute] === undefined) this.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
    }
    for (const o of this.options) {
      if (this.sources[o.attribute] !== 'cli') continue;
      for (const name of o.conflictsWith) {
        const other = this.options.find((x) => x.attribute === name);
        if (other !== undefined && this.sources[other.attribute] === 'cli') {
          this.error(`error: option '${o.flags}' cannot be used with option '${other.flags}'`, { code: 'commander.conflictingOption' });
        }
      }
    }
    const expected = this.argumentSpec === null ? 0 : 1;
    if (positional.length < expected) this.error(`error: missing required argument '${this.argumentSpec!.name}'`, { code: 'commander.missingArgument' });
    if (positional.length > expected && !this.excessArgumentsAllowed) {
      this.error(`error: too many arguments for '${this.nameText}'. Expected ${expected} argument${expected === 1 ? '' : 's'} but got ${positional.length}.`, { code: 'commander.excessArguments' });
    }
    if (this.actionFn !== null) await this.actionFn(...positional.slice(0, expected), this.opts(), this);
    return this;
  }

  private set(o: Option, value: unknown): void {
    this.values[o.attribute] = value;
    this.sources[o.attribute] = 'cli';
  }

  private showHelp(): never {
    this.out().writeOut(this.helpText());
    throw new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)');
  }

  /** Help in commander's layout: usage, description, options, commands. */
  helpText(): string {
    const rows = (items: Array<[string, string]>): string[] => {
      const width = Math.max(...items.map(([t]) => t.length));
      return items.map(([t, d]) => `  ${t.padEnd(width)}  ${d}`.trimEnd());
    };
    const describe = (o: Option): string => {
      const extra: string[] = [];
      if (o.allowed !== null) extra.push(`choices: ${o.allowed.map((c) => JSON.stringify(c)).join(', ')}`);
      if (o.defaultValue !== undefined && !o.negate) extra.push(`default: ${JSON.stringify(o.defaultValue)}`);
      return extra.length > 0 ? `${o.description} (${extra.join(', ')})` : o.description;
    };
    const arg = this.argumentSpec !== null ? ` <${this.argumentSpec.name}>` : '';
    const lines = [`Usage: ${this.fullName()} [options]${this.commands.length > 0 ? ' [command]' : arg}`, ''];
    if (this.descriptionText) lines.push(this.descriptionText, '');
    if (this.argumentSpec !== null) lines.push('Arguments:', ...rows([[this.argumentSpec.name, this.argumentSpec.description]]), '');
    const opts: Array<[string, string]> = this.options.map((o) => [o.flags, describe(o)]);
    if (this.versionOption !== null) opts.unshift([this.versionOption.flags, this.versionOption.description]);
    opts.push(['-h, --help', 'display help for command']);
    lines.push('Options:', ...rows(opts));
    const visible = this.commands.filter((c) => !c.hidden);
    if (visible.length > 0) {
      const cmds: Array<[string, string]> = visible.map((c) => [`${c.nameText}${c.options.length > 0 ? ' [options]' : ''}${c.argumentSpec ? ` <${c.argumentSpec.name}>` : ''}`, c.descriptionText]);
      cmds.push(['help [command]', 'display help for command']);
      lines.push('', 'Commands:', ...rows(cmds));
    }
    return lines.join('\n') + '\n';
  }
}
