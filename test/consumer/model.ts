// (b) The ./model and ./model/file entries, type-checked with consumer.ts once the package has them.
import { loadModel, type Model, type Session } from 'toeplitz-attention/model';
import { loadModelFile } from 'toeplitz-attention/model/file';

export const logitsOf = (model: Model, tokens: number[]): Float64Array => model.logits(tokens);
export const load: (bytes: Uint8Array) => Model = loadModel;
export const fromFile: (path: string) => Model = loadModelFile;
export async function firstToken(model: Model): Promise<number | undefined> {
  const session: Session = model.session({ seed: 1, temperature: 0.5 });
  for await (const g of session.generate('Call me', { maxTokens: 1 })) return g.token;
  return undefined;
}
