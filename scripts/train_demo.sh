#!/usr/bin/env bash
# The committed recipe of the shipped tiny demo model (talkverse/demo/talkverse-tiny-demo), on CPU.
#
#   scripts/train_demo.sh [WORK_DIR]      (default demo_work/)
#
# 1. tiny umT5 / tokenizer / random wav2vec2 (talkverse.testing.tiny, seed 0); the wav2vec2 is then fitted to
#    predict log-mel bands of synthetic babble (scripts/fit_demo_audio_encoder.py), so its states carry loudness
# 2. the VAE: AutoencoderKLWan at base width 16 fitted on synthetic faces (scripts/fit_demo_vae.py): stage 1 on single
#    frames (the image), stage 2 on 9-frame windows reconstructed after 0-12 warm-up chunks without gradient (the
#    temporal layers and the causal caches as deep inside a 97-frame video, where the pipeline decodes)
# 3. the synthetic talking-face dataset in the TalkVerse format (train seed 1, held-out seed 2, long seed 3, minute
#    seed 5), text embeddings from the demo umT5
# 4. latents pre-computed by scripts/precache.py (24 main + 73 motion frames at 128x128), WINDOWS random windows per
#    clip (precache --seed 0..WINDOWS-1, one sub-folder each; the trainer reads them all)
# 5. train_s2v_5b.py, strategy full, from a randomly initialised TI2V-layout base of talkverse/configs/s2v_demo.yaml,
#    with motion dropout MOTION_DROPOUT: with the motion latents present the previous frames already show the face,
#    so only motion-dropped samples teach the model to take the identity from the reference (docs/demo.md)
# 6. the pipeline folder written by scripts/build_demo.py: the mean of the last AVERAGE exports (every 500 steps),
#    transformer in bf16, first_clip_motion zeros (FIRST_CLIP_MOTION; "reference" to be measured on the retrained model)
# Environment overrides: AUDIO_STEPS (1500), VAE_STEPS (3500), VAE2_STEPS (500), NUM_CLIPS (480), WINDOWS (2),
# STEPS (10000), BATCH (4), LR (1e-3), MOTION_DROPOUT (0.5), AVERAGE (9), SEED (1), THREADS (2), DIT_THREADS (2),
# RUN_DIR ($WORK/run), FIRST_CLIP_MOTION (zeros), DEMO_OUT (talkverse/demo/talkverse-tiny-demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK="${1:-demo_work}"
mkdir -p "$WORK"
export OMP_NUM_THREADS="${THREADS:-2}"

python scripts/build_demo.py encoders --work "$WORK"
[[ -f "$WORK/encoders/audio_encoder/config.json" ]] || python scripts/fit_demo_audio_encoder.py \
    --init "$WORK/encoders/audio_encoder_random" --out "$WORK/encoders/audio_encoder" --steps "${AUDIO_STEPS:-1500}" \
    --threads "${THREADS:-2}"
# VAE stage 1: single frames learn the image; stage 2: 9-frame windows after a random number (0-12) of warm-up chunks
# train the temporal layers and the causal caches that carry context from one 4-frame chunk to the next. Trained on
# plain 9-frame windows only, frames 10-97 of a video decode at 11-18 dB (the caches never held real context).
[[ -f "$WORK/vae_stage1/config.json" ]] || python scripts/fit_demo_vae.py --out "$WORK/vae_stage1" \
    --max_steps "${VAE_STEPS:-3500}" --frames 1 --batch 8 --lr 2e-3 --threads "${THREADS:-2}"
[[ -f "$WORK/vae/config.json" ]] || python scripts/fit_demo_vae.py --init "$WORK/vae_stage1" --out "$WORK/vae" \
    --max_steps "${VAE2_STEPS:-500}" --frames 9 --batch 1 --warm_chunks 12 --lr 5e-4 --threads "${THREADS:-2}" \
    --seed 1
python scripts/build_demo.py data --work "$WORK" --num_clips "${NUM_CLIPS:-480}"
for ((w = 0; w < ${WINDOWS:-2}; w++)); do
    python scripts/precache.py --csv "$WORK/train/metadata.csv" --data_root "$WORK/train" \
        --text_cache "$WORK/train/text_embeddings" --vae "$WORK/vae" --wav2vec_dir "$WORK/encoders/audio_encoder" \
        --out "$WORK/latents/w$w" --seed "$w" --bucket 128x128 --num_frames 24 --dtype fp32
done
python scripts/build_demo.py base --work "$WORK"
OMP_NUM_THREADS="${DIT_THREADS:-2}" python train_s2v_5b.py --ckpt_dir "$WORK/base" --model_config s2v_demo --latent_cache "$WORK/latents" \
    --text_cache "$WORK/train/text_embeddings" --output_path "${RUN_DIR:-$WORK/run}" --unfreeze_strategy full \
    --learning_rate "${LR:-1e-3}" --warmup_steps 200 --batch_size "${BATCH:-4}" --gradient_accumulation_steps 1 \
    --motion_dropout "${MOTION_DROPOUT:-0.5}" --max_steps "${STEPS:-10000}" --save_steps 500 --log_interval 50 --gradient_checkpointing false \
    --export_dtype fp32 --device cpu --seed "${SEED:-1}"
python scripts/build_demo.py assemble --work "$WORK" --run "${RUN_DIR:-$WORK/run}" --average "${AVERAGE:-9}" \
    --first_clip_motion "${FIRST_CLIP_MOTION:-zeros}" --out "${DEMO_OUT:-talkverse/demo/talkverse-tiny-demo}"
