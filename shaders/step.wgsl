// Step holds the per-call values the host writes once per forward pass
// (shaders.Step in Go, 32 bytes).
struct Step {
  pos: u32,          // position of the first token of this call
  n_tokens: u32,     // T, tokens in this call
  temperature: f32,  // sampling: <= 0 is greedy
  top_k: u32,        // 0: off
  top_p: f32,        // >= 1 or <= 0: off
  min_p: f32,        // <= 0: off
  rand: f32,         // uniform in [0, 1)
  _pad: u32,
}
