// Drives the TalkVerse web UI (python -m talkverse.app) in Debian's headless Chromium with playwright-core.
// No browser is ever downloaded: the executable is /usr/bin/chromium (or $CHROMIUM).
//
//   node app.mjs generate   '{"url": ..., "image": ..., "audio": ..., "screenshot": ..., "timeout_s": 240}'
//   node app.mjs bad-inputs '{"url": ..., "image": ..., "audio": ..., "text_file": ..., "fake_image": ..., "fake_audio": ..., "long_audio": ...}'
//
// Prints one JSON line with what it measured; exits non-zero (with the error on stderr) when a step fails.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [mode, raw] = process.argv.slice(2);
const opt = JSON.parse(raw);
const timeout = (opt.timeout_s ?? 120) * 1000;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "talkverse-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 1000 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"],
});
const log = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));

async function open() {
  await page.goto(opt.url, { waitUntil: "domcontentloaded", timeout });
  await page.locator("#generate").waitFor({ state: "visible", timeout });
}

async function upload(elemId, file) {
  await page.locator(`#${elemId} input[type=file]`).first().setInputFiles(file, { timeout });
}

// Waits for a toast/error text in the page; returns its text.
async function errorText(substring) {
  const loc = page.getByText(substring, { exact: false }).first();
  await loc.waitFor({ state: "visible", timeout });
  return (await loc.innerText()).trim();
}

async function closeToasts() {
  for (const b of await page.locator(".toast-close").all()) await b.click().catch(() => {});
  await page.waitForTimeout(300);
}

let result = {};
let result_progress = [];
try {
  await open();
  if (mode === "generate") {
    await upload("portrait", opt.image);
    await upload("speech", opt.audio);
    await page.locator("#speech audio, #speech [data-testid='waveform-Speech'], #speech button").first()
      .waitFor({ timeout });
    const t0 = Date.now();
    await page.locator("#generate").click();
    const video = page.locator("#result video");
    // The progress bar's texts while the clip loop runs ("Clip 1/2 · step 3/20", ...).
    const seen = new Set();
    while ((await video.count()) === 0) {
      if (Date.now() - t0 > timeout) throw new Error("no video before the timeout");
      const text = await page.locator("body").innerText();
      for (const m of text.matchAll(/Clip \d+\/\d+ · [^\n|]*?\d+\/\d+/g)) seen.add(m[0]);
      await page.waitForTimeout(250);
    }
    result_progress = [...seen];
    const meta = await video.evaluate((v) => new Promise((resolve, reject) => {
      const done = () => resolve({ duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                                   readyState: v.readyState, src: v.currentSrc });
      if (v.readyState >= 1 && Number.isFinite(v.duration)) return done();
      v.addEventListener("loadedmetadata", done, { once: true });
      v.addEventListener("error", () => reject(new Error(`video error ${v.error && v.error.code}`)), { once: true });
    }), undefined, { timeout });
    result = { ...meta, generate_s: (Date.now() - t0) / 1000, progress: result_progress };
    result.status = (await page.locator("#status").innerText()).trim();
    result.gallery_items = await page.locator("#gallery video, #gallery img").count();
    await page.locator("#status").scrollIntoViewIfNeeded();
    if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });
  } else if (mode === "bad-inputs") {
    result.errors = {};
    // 1a. a .txt file as the portrait: the page refuses it before uploading (Gradio's own file-type check)
    await upload("portrait", opt.text_file);
    result.errors.image_type = await errorText("Invalid file type");
    await closeToasts();
    // 1b. a text file named .png: gr.Image's server-side preprocessing fails -> our readable message
    await upload("portrait", opt.fake_image);
    await upload("speech", opt.audio);
    await page.locator("#generate").click();
    result.errors.image = await errorText("is not an image that can be read");
    await closeToasts();
    // 2. a real image, a text file named .wav as the speech (a fresh page: the inputs start empty)
    await open();
    await upload("portrait", opt.image);
    await upload("speech", opt.fake_audio);
    await page.locator("#generate").click();
    result.errors.audio = await errorText("is not audio that can be read");
    await closeToasts();
    // 3. speech longer than --max_audio_seconds
    await open();
    await upload("portrait", opt.image);
    await upload("speech", opt.long_audio);
    await page.locator("#generate").click();
    result.errors.too_long = await errorText("accepts at most");
    await closeToasts();
    if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });
    result.page_text_has_traceback = (await page.locator("body").innerText()).includes("Traceback");
    // 4. the server still answers: a fresh page load works
    await open();
    result.reloaded = true;
    // 5. "Enhance prompt" (only when the app runs with --enhancer) rewrites the prompt
    result.enhance_visible = await page.locator("#enhance").isVisible();
    if (result.enhance_visible) {
      const box = page.locator("#prompt textarea");
      const before = await box.inputValue();
      await page.locator("#enhance").click();
      await page.waitForFunction((b) => {
        const v = document.querySelector("#prompt textarea").value;
        return v && v !== b;
      }, before, { timeout });
      result.enhanced_prompt = await box.inputValue();
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(`${mode} failed: ${e.stack || e}`);
  console.error(log.slice(-30).join("\n"));
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot.replace(/\.png$/, "_failure.png"), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
