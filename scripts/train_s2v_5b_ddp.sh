#!/usr/bin/env bash
# Multi-GPU training launcher: one torchrun process per GPU on this node.
#
# Environment overrides (defaults in brackets):
#   NUM_GPUS          processes per node [count of CUDA_VISIBLE_DEVICES entries, else nvidia-smi -L, else 1]
#   NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT   multi-node rendezvous [1 / 0 / 127.0.0.1 / 29500]
#   CKPT_DIR          Wan2.2-TI2V-5B base [ckpts/Wan2.2-TI2V-5B]
#   WAV2VEC_DIR       wav2vec2-large-xlsr-53-english folder [ckpts/wav2vec2-large-xlsr-53-english]
#   CSV / DATA_ROOT / TEXT_CACHE   metadata CSV, its root, cached umT5 embeddings [data/train.csv / data / data/text_embeddings]
#   LATENT_CACHE      a scripts/precache.py folder; when set, CSV/DATA_ROOT are not used
#   OUTPUT_PATH       run folder [outputs/s2v_5b_train]
#   POLICY            ddp | fsdp [fsdp]
#   BATCH_SIZE / ACCUM / LR / STRATEGY / MAX_STEPS   [1 / 8 / 1e-5 / lora / 10000]
# Extra arguments are passed to train_s2v_5b.py. A rerun resumes from the newest complete state in OUTPUT_PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

count_gpus() {
    if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
        local n=0 d
        IFS=',' read -ra devs <<< "$CUDA_VISIBLE_DEVICES"
        for d in "${devs[@]}"; do [[ -n "$d" && "$d" != "-1" ]] && n=$((n + 1)); done
        echo "$n"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L | wc -l
    else
        echo 1
    fi
}

NUM_GPUS="${NUM_GPUS:-$(count_gpus)}"
DATA_ARGS=()
if [[ -n "${LATENT_CACHE:-}" ]]; then
    DATA_ARGS+=(--latent_cache "$LATENT_CACHE" --text_cache "${TEXT_CACHE:-$LATENT_CACHE}")
else
    DATA_ARGS+=(--csv "${CSV:-data/train.csv}" --data_root "${DATA_ROOT:-data}" --text_cache "${TEXT_CACHE:-data/text_embeddings}"
                --wav2vec_dir "${WAV2VEC_DIR:-ckpts/wav2vec2-large-xlsr-53-english}")
fi

exec torchrun --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$NUM_GPUS" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
    train_s2v_5b.py --ckpt_dir "${CKPT_DIR:-ckpts/Wan2.2-TI2V-5B}" "${DATA_ARGS[@]}" \
    --output_path "${OUTPUT_PATH:-outputs/s2v_5b_train}" --distributed_policy "${POLICY:-fsdp}" \
    --batch_size "${BATCH_SIZE:-1}" --gradient_accumulation_steps "${ACCUM:-8}" --learning_rate "${LR:-1e-5}" \
    --unfreeze_strategy "${STRATEGY:-lora}" --max_steps "${MAX_STEPS:-10000}" --enable_roi_loss true "$@"
