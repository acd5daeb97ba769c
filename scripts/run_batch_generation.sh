#!/usr/bin/env bash
# Batch talking-video generation with TalkVerse-5B: one worker per GPU under torchrun, sharing one dynamic
# work queue (longest audio first). Items whose output already exists are skipped, so rerunning resumes.
#
# Usage:  scripts/run_batch_generation.sh [extra generate.py flags...]
#         scripts/run_batch_generation.sh --print-workers     # print the worker count and exit
#
# Environment variables (all optional; defaults in brackets):
#   TASK            config name passed as --task                                    [s2v-5B]
#   CKPT_DIR        Wan2.2-TI2V-5B checkpoint folder, --ckpt_dir                    [ckpts/Wan2.2-TI2V-5B]
#   LORA_CKPT       TalkVerse checkpoint file, --lora_ckpt (only passed when set)   [unset]
#   BATCH_FILE      JSON array or JSONL batch file, --batch_file                    [batch_config.json]
#   OUTPUT_DIR      output folder, --output_dir                                      [outputs/s2v_5b_batch]
#   SIZE            output size "W*H", --size (only passed when set)                [unset]
#   SIZE_BUCKET     resolution bucket, --size_bucket                                 [fasttalk-720]
#   INFER_FRAMES    frames per clip (a multiple of 4), --infer_frames               [120]
#   NUM_CLIP        clips per video, or "auto" to cover the audio, --num_clip        [auto]
#   SAMPLING_STEPS  denoising steps, --sample_steps                                  [50]
#   GUIDE_SCALE     classifier-free guidance scale, --sample_guide_scale             [6.5]
#   SEED            base seed (item i uses its own "seed" or SEED + i), --base_seed  [420]
#   NUM_WORKERS     number of workers (torchrun --nproc_per_node). Default: the number of entries in
#                   CUDA_VISIBLE_DEVICES (ignoring empty entries and -1); else the `nvidia-smi -L` count; else 1.
#   TORCHRUN        torchrun command                                                 [torchrun]
#   TALKVERSE_BATCH_DRY_RUN=1   print the torchrun command instead of running it
#
# Paths are relative to the repository root (the script changes to it). The exit status is torchrun's.
set -euo pipefail

# The script's folder, without external commands (dirname) so that it works with a minimal PATH.
script_src="${BASH_SOURCE[0]}"
if [[ "$script_src" == */* ]]; then script_dir="${script_src%/*}"; else script_dir="."; fi
script_dir=$(cd -- "$script_dir" && pwd)

# Worker count: NUM_WORKERS, else CUDA_VISIBLE_DEVICES entries, else nvidia-smi GPUs, else 1.
count_workers() {
    if [[ -n "${NUM_WORKERS:-}" ]]; then
        if [[ ! "$NUM_WORKERS" =~ ^[1-9][0-9]*$ ]]; then
            echo "run_batch_generation.sh: NUM_WORKERS must be a positive integer, got '$NUM_WORKERS'" >&2
            return 1
        fi
        echo "$NUM_WORKERS"
        return 0
    fi
    local n=0 dev
    if [[ -n "${CUDA_VISIBLE_DEVICES+x}" ]]; then
        local -a devs
        IFS=',' read -r -a devs <<< "$CUDA_VISIBLE_DEVICES"
        for dev in "${devs[@]}"; do
            dev="${dev//[[:space:]]/}"
            [[ -z "$dev" || "$dev" == "-1" ]] && continue
            n=$((n + 1))
        done
    fi
    if (( n == 0 )) && command -v nvidia-smi > /dev/null 2>&1; then
        local line
        while IFS= read -r line; do
            [[ "$line" == GPU* ]] && n=$((n + 1))
        done < <(nvidia-smi -L 2> /dev/null || true)
    fi
    (( n == 0 )) && n=1
    echo "$n"
}

if [[ "${1:-}" == "--print-workers" ]]; then
    count_workers
    exit 0
fi

TASK="${TASK:-s2v-5B}"
CKPT_DIR="${CKPT_DIR:-ckpts/Wan2.2-TI2V-5B}"
LORA_CKPT="${LORA_CKPT:-}"
BATCH_FILE="${BATCH_FILE:-batch_config.json}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/s2v_5b_batch}"
SIZE="${SIZE:-}"
SIZE_BUCKET="${SIZE_BUCKET:-fasttalk-720}"
INFER_FRAMES="${INFER_FRAMES:-120}"
NUM_CLIP="${NUM_CLIP:-auto}"
SAMPLING_STEPS="${SAMPLING_STEPS:-50}"
GUIDE_SCALE="${GUIDE_SCALE:-6.5}"
SEED="${SEED:-420}"
TORCHRUN="${TORCHRUN:-torchrun}"

N=$(count_workers)

cd -- "$script_dir/.."

cmd=("$TORCHRUN" --standalone "--nproc_per_node=$N" generate.py
    --task "$TASK"
    --ckpt_dir "$CKPT_DIR"
    --batch_file "$BATCH_FILE"
    --output_dir "$OUTPUT_DIR"
    --size_bucket "$SIZE_BUCKET"
    --infer_frames "$INFER_FRAMES"
    --num_clip "$NUM_CLIP"
    --sample_steps "$SAMPLING_STEPS"
    --sample_guide_scale "$GUIDE_SCALE"
    --base_seed "$SEED")
[[ -n "$LORA_CKPT" ]] && cmd+=(--lora_ckpt "$LORA_CKPT")
[[ -n "$SIZE" ]] && cmd+=(--size "$SIZE")
cmd+=("$@")

if [[ "${TALKVERSE_BATCH_DRY_RUN:-0}" == "1" ]]; then
    printf '%q ' "${cmd[@]}"
    printf '\n'
    exit 0
fi

echo "run_batch_generation.sh: $N worker(s): ${cmd[*]}" >&2
exec "${cmd[@]}"
