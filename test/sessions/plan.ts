// The input plan the crash tests run, and its uninterrupted reference (a plain model session).
import type { Model } from '../../src/model/index.js';

export type PlanOp =
  | { kind: 'feed'; tokens: Uint8Array }
  | { kind: 'options'; options: { temperature?: number; topK?: number; topP?: number } }
  | { kind: 'generate'; prompt: string; maxTokens: number; stop?: string[] };

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export const PLAN = {
  sampling: { seed: 7, temperature: 0.9 },
  ops: [
    { kind: 'feed', tokens: enc('Once upon a time') },
    { kind: 'generate', prompt: ' there', maxTokens: 150 },
    { kind: 'options', options: { temperature: 0.7, topK: 20 } },
    { kind: 'generate', prompt: '', maxTokens: 120, stop: ['e\u00e9', 'zq'] },
    { kind: 'feed', tokens: enc(' and then') },
    { kind: 'options', options: { temperature: 1.2, topP: 0.9 } },
    { kind: 'generate', prompt: '!', maxTokens: 200 },
    { kind: 'generate', prompt: '', maxTokens: 100 },
  ] as PlanOp[],
};

export interface PlanState {
  op: PlanOp;
  /** position before the op's first generated token (generate), else before the op */
  start: number;
  /** position after the op */
  end: number;
  temperature: number;
  /** generate: the reference tokens, by position start + 1 + i */
  tokens: number[];
}

/** The uninterrupted run of PLAN: the state after each op, and the final position and snapshot. */
export async function planStates(model: Model): Promise<{ states: PlanState[]; position: number; snapshot: Uint8Array }> {
  const ref = model.session(PLAN.sampling);
  const states: PlanState[] = [];
  for (const op of PLAN.ops) {
    if (op.kind === 'feed') {
      const start = ref.position;
      ref.feed(op.tokens, { lastOnly: true });
      states.push({ op, start, end: ref.position, temperature: ref.sampling.temperature, tokens: [] });
    } else if (op.kind === 'options') {
      ref.setSampling(op.options);
      states.push({ op, start: ref.position, end: ref.position, temperature: ref.sampling.temperature, tokens: [] });
    } else {
      const tokens: number[] = [];
      const start = ref.position + new TextEncoder().encode(op.prompt).length;
      for await (const t of ref.generate(op.prompt, { maxTokens: op.maxTokens, stop: op.stop })) tokens.push(t.token);
      states.push({ op, start, end: ref.position, temperature: ref.sampling.temperature, tokens });
    }
  }
  return { states, position: ref.position, snapshot: ref.snapshot() };
}
