// The demo page: a row-LSTM reading a drawn digit row by row, and next-word suggestions from a
// word LSTM. Static: it loads rnnedge files by URL (?digits=URL&words=URL, default models/…).
// window.rnnedgeDemo exposes what the page computed, for the browser test and for curious readers.
import { load } from '../src/index.js';

const params = new URLSearchParams(location.search);
const DIGITS_URL = params.get('digits') ?? 'models/mnist-lstm.onnx';
const WORDS_URL = params.get('words') ?? 'models/ptb-small.onnx';
const THREADS = Number(params.get('threads') ?? 1);
const ROW_DELAY = Number(params.get('rowDelay') ?? 25); // ms between rows, to watch the prediction move
const SIZE = 28;
const SCALE = 10;

// What each half of the page needs when its file is not there (a first run from the README has the digits only).
const NEEDS = {
  digits: 'a row classifier: rnnedge export runs/digits/checkpoint.pt -o js/demo/models/mnist-lstm.onnx (README, step 4)',
  words: 'a word language model: rnnedge export runs/ptb-small/checkpoint.pt -o js/demo/models/ptb-small.onnx (docs/language-models.md trains one)',
};

const $ = (id) => document.getElementById(id);
const demo = {
  timings: { navigationToDigitsModel: null, navigationToWordsModel: null, navigationToFirstPrediction: null },
  digits: null, // {pixels, rows: [Float32Array per row], answer}
  words: null, // {words, probs, suggestions}
  errors: [],
  missing: [], // the halves whose model file the server does not have (HTTP 404)
};
window.rnnedgeDemo = demo;

function firstPrediction() {
  demo.timings.navigationToFirstPrediction ??= performance.now();
}

function status(text) {
  $('status').textContent = text;
}

// -- digits ---------------------------------------------------------------------------------------
const pad = $('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true });
let classifier = null;
let run = 0; // the latest classification; an older one stops when a newer starts

function clearPad() {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function bars(probs, labels) {
  const best = Math.max(...probs) > 0 ? probs.indexOf(Math.max(...probs)) : -1;
  $('bars').replaceChildren(
    ...labels.map((label, i) => {
      const div = document.createElement('div');
      div.className = i === best ? 'bar top' : 'bar';
      div.dataset.p = probs[i];
      div.innerHTML = `<b>${label}</b><i style="width:${(probs[i] * 100).toFixed(1)}%"></i><span>${(probs[i] * 100).toFixed(1)}%</span>`;
      return div;
    }),
  );
  return best;
}

/** Feed the 28 rows of `pixels` (Uint8Array(784)) one by one, showing the prediction after each. */
async function classify(pixels) {
  if (!classifier) return null;
  const mine = ++run;
  const stream = classifier.stream();
  const rows = [];
  const strip = $('rows');
  strip.replaceChildren();
  const scan = $('scan');
  scan.style.display = 'block';
  for (let t = 0; t < SIZE; t++) {
    const probs = await stream.feed(pixels.subarray(t * SIZE, (t + 1) * SIZE));
    if (mine !== run) return null;
    rows.push(Array.from(probs));
    const best = bars(probs, classifier.labels);
    const cell = document.createElement('div');
    cell.textContent = classifier.labels[best];
    cell.title = `after row ${t + 1}: ${(probs[best] * 100).toFixed(1)}%`;
    if (probs[best] > 0.9) cell.className = 'sure';
    strip.append(cell);
    scan.style.top = `${t * SCALE}px`;
    if (ROW_DELAY > 0) await new Promise((resolve) => setTimeout(resolve, ROW_DELAY));
  }
  scan.style.display = 'none';
  const last = rows[SIZE - 1];
  const answer = classifier.labels[last.indexOf(Math.max(...last))];
  $('answer').textContent = answer;
  demo.digits = { pixels: Array.from(pixels), rows, answer };
  firstPrediction();
  return demo.digits;
}

/** The drawing as MNIST presents digits: fitted into 20x20, centred by its centre of mass in 28x28. */
function drawnPixels() {
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  let [x0, y0, x1, y1] = [pad.width, pad.height, -1, -1];
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (data[(y * pad.width + x) * 4] > 0) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  if (x1 < 0) return null;
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const k = 20 / Math.max(w, h);
  const small = new OffscreenCanvas(SIZE, SIZE);
  const sctx = small.getContext('2d', { willReadFrequently: true });
  sctx.fillStyle = '#000';
  sctx.fillRect(0, 0, SIZE, SIZE);
  sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(pad, x0, y0, w, h, (SIZE - w * k) / 2, (SIZE - h * k) / 2, w * k, h * k);
  const boxed = sctx.getImageData(0, 0, SIZE, SIZE).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = boxed[i * 4];
    mass += v;
    mx += v * (i % SIZE);
    my += v * Math.floor(i / SIZE);
  }
  const dx = Math.round(SIZE / 2 - 0.5 - mx / mass);
  const dy = Math.round(SIZE / 2 - 0.5 - my / mass);
  const pixels = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const sx = x - dx;
      const sy = y - dy;
      if (sx >= 0 && sy >= 0 && sx < SIZE && sy < SIZE) pixels[y * SIZE + x] = boxed[(sy * SIZE + sx) * 4];
    }
  }
  return pixels;
}

/** Paint 28x28 pixels onto the pad and classify exactly those pixels (what the browser test uses). */
demo.showDigit = (pixels) => {
  const px = Uint8Array.from(pixels);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const v = px[y * SIZE + x];
      ctx.fillStyle = `rgb(${v},${v},${v})`;
      ctx.fillRect(x * SCALE, y * SCALE, SCALE, SCALE);
    }
  }
  return classify(px);
};

let drawing = false;
let last = null;
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  last = [e.offsetX, e.offsetY];
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 22;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.arc(last[0], last[1], 11, 0, 2 * Math.PI);
  ctx.fillStyle = '#fff';
  ctx.fill();
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  ctx.beginPath();
  ctx.moveTo(...last);
  ctx.lineTo(e.offsetX, e.offsetY);
  ctx.stroke();
  last = [e.offsetX, e.offsetY];
});
const penUp = () => {
  if (!drawing) return;
  drawing = false;
  const pixels = drawnPixels();
  if (pixels) classify(pixels);
};
pad.addEventListener('pointerup', penUp);
pad.addEventListener('pointercancel', penUp);
$('clear').addEventListener('click', () => {
  run++;
  clearPad();
  $('rows').replaceChildren();
  $('answer').textContent = '–';
  if (classifier) bars(new Array(classifier.labels.length).fill(0), classifier.labels);
});

// -- words ----------------------------------------------------------------------------------------
let lm = null;
let stream = null;
let fed = []; // the words the stream has been fed
let queue = Promise.resolve();

function showSuggestions(probs, partial) {
  let top;
  if (partial) {
    // The likeliest words that begin with what is being typed.
    top = lm.vocabulary
      .map((word, id) => ({ word, probability: probs[id] }))
      .filter((s) => s.word.startsWith(partial) && !s.word.startsWith('<'))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 8);
  } else {
    top = lm.topK(probs, 8);
  }
  const max = top.length ? top[0].probability : 1;
  $('suggestions').replaceChildren(
    ...top.map(({ word, probability }) => {
      const li = document.createElement('li');
      li.dataset.word = word;
      li.dataset.p = probability;
      li.innerHTML = `<b></b><i style="width:${((probability / max) * 100).toFixed(1)}%"></i><span>${(probability * 100).toFixed(1)}%</span>`;
      li.querySelector('b').textContent = word;
      li.addEventListener('click', () => {
        const input = $('text');
        input.value = input.value.replace(/\S*$/, '') + word + ' ';
        input.dispatchEvent(new Event('input'));
        input.focus();
      });
      return li;
    }),
  );
  return top;
}

/** Bring the stream up to the finished words of the text (word by word), then suggest the next. */
async function update() {
  const text = $('text').value;
  const words = text.split(/\s+/).filter(Boolean);
  const partial = /\s$/.test(text) || !words.length ? '' : words.pop();
  const context = ['<eos>', ...words]; // a sentence starts after <eos>
  if (context.length < fed.length || fed.some((w, i) => w !== context[i])) {
    stream = lm.stream();
    fed = [];
  }
  let probs = stream.last;
  for (const word of context.slice(fed.length)) {
    probs = await stream.feed(word);
    fed.push(word);
  }
  const suggestions = showSuggestions(probs, partial);
  demo.words = { words, partial, probs: Array.from(probs), suggestions };
  firstPrediction();
}

$('text').addEventListener('input', () => {
  if (!lm) return;
  queue = queue.then(update).catch((e) => {
    demo.errors.push(String(e));
    status(`error: ${e.message}`);
  });
});
demo.settled = () => queue; // resolves once the suggestions show the latest text

// -- start ----------------------------------------------------------------------------------------
clearPad();
const started = performance.now();
async function open(url, what, key) {
  try {
    const response = await fetch(url).catch((e) => {
      throw new Error(`cannot fetch model ${url}: ${e.message}`);
    });
    if (response.status === 404) {
      // Not an error of the page: say in that half which file to put where, and run the other half.
      demo.missing.push(what);
      const note = document.createElement('p');
      note.className = 'missing-note';
      note.textContent = `No model at ${url} (HTTP 404). This half needs ${NEEDS[what]}; or open the page with ?${what}=URL.`;
      $(what).append(note);
      $(what).classList.add('missing');
      return null;
    }
    const model = await load(response, { threads: THREADS });
    demo.timings[key] = performance.now();
    return model;
  } catch (e) {
    demo.errors.push(`${what}: ${e.message}`);
    return null;
  }
}
demo.ready = Promise.all([open(DIGITS_URL, 'digits', 'navigationToDigitsModel'), open(WORDS_URL, 'words', 'navigationToWordsModel')]).then(
  async ([digitsModel, wordsModel]) => {
    classifier = digitsModel;
    lm = wordsModel;
    if (classifier) bars(new Array(classifier.labels.length).fill(0), classifier.labels);
    if (lm) {
      stream = lm.stream();
      await update();
    }
    const loaded = [classifier && `digits: ${DIGITS_URL}`, lm && `words: ${WORDS_URL}`].filter(Boolean).join(' · ');
    const absent = demo.missing.length ? ` (no ${demo.missing.join(' or ')} model: see below)` : '';
    status(demo.errors.length ? demo.errors.join(' · ') : `ready in ${Math.round(performance.now() - started)} ms${absent}`);
    const threads = (classifier ?? lm)?.threads ?? THREADS;
    $('info').textContent = `${loaded} · onnxruntime-web (WebAssembly), ${threads} thread(s)${crossOriginIsolated ? ', cross-origin isolated' : ''}`;
    return { digits: Boolean(classifier), words: Boolean(lm), threads };
  },
);
