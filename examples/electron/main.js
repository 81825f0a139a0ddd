// Main process: owns the window and one utility process that runs inference. The renderer
// asks through the preload bridge (ipcMain.handle); the main process forwards the job to the
// utility process and relays the answer.
const path = require('node:path');
const { app, BrowserWindow, dialog, ipcMain, utilityProcess } = require('electron');

let worker = null;
let nextId = 1;
const pending = new Map(); // job id -> { resolve, reject }

function startWorker() {
  worker = utilityProcess.fork(path.join(__dirname, 'feature-worker.js'), [], {
    serviceName: 'paddle-image-feature',
    stdio: 'inherit',
    // libgomp threads spin after each parallel region by default; passive waiting leaves
    // idle cores to the UI. Set before the worker loads the addon (libgomp reads it at load).
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
  worker.on('message', ({ id, ok, result, error }) => {
    const job = pending.get(id);
    if (!job) return;
    pending.delete(id);
    if (ok) job.resolve(result);
    else job.reject(Object.assign(new Error(error.message), { code: error.code }));
  });
  worker.on('exit', (code) => {
    // A crash in native code ends only this process; fail its jobs and start a new one on
    // the next request.
    for (const job of pending.values()) job.reject(new Error(`inference process exited (${code})`));
    pending.clear();
    worker = null;
  });
}

function runJob(message) {
  if (worker === null) startWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, ...message });
  });
}

function createWindow() {
  const win = new BrowserWindow({
    width: 720,
    height: 560,
    webPreferences: { preload: path.join(__dirname, 'preload.js') },
  });
  ipcMain.handle('pif:pick-and-extract', async () => {
    const { canceled, filePaths } = await dialog.showOpenDialog(win, {
      properties: ['openFile'],
      filters: [
        { name: 'Images', extensions: ['jpg', 'jpeg', 'png', 'bmp', 'webp', 'tif', 'tiff'] },
      ],
    });
    if (canceled || filePaths.length === 0) return null;
    return runJob({ type: 'extract', image: filePaths[0] });
  });
  void win.loadFile(path.join(__dirname, 'index.html'));
}

void app.whenReady().then(() => {
  startWorker(); // load the model while the window opens
  createWindow();
});

app.on('window-all-closed', () => app.quit());
app.on('will-quit', () => worker?.kill());
