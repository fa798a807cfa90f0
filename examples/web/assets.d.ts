// A bundler gives the URL of an imported asset (esbuild: --loader:.safetensors=file; Vite: append ?url).
declare module '*.safetensors' {
  const url: string;
  export default url;
}
