"""The default prompts (inference.md §5). No imports: the CLIs' ``--help`` reads them without loading torch."""

DEFAULT_PROMPT = "A person is speaking to the camera."
# The s2v-5B config's negative prompt, verbatim.
DEFAULT_NEGATIVE_PROMPT = (
    "画面模糊，最差质量，画面模糊，细节模糊不清，情绪激动剧烈，手快速抖动，字幕，丑陋的，残缺的，多余的手指，画得不好的手部，"
    "画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
# Wan2.2-S2V-14B's ``sample_neg_prompt`` (wan/configs/wan_s2v_14B.py): verbatim the same text as the s2v-5B one.
S2V_14B_NEGATIVE_PROMPT = DEFAULT_NEGATIVE_PROMPT
