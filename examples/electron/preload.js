// Preload (sandboxed): the only API the page gets.
const { contextBridge, ipcRenderer } = require('electron');

contextBridge.exposeInMainWorld('pif', {
  pickAndExtract: () => ipcRenderer.invoke('pif:pick-and-extract'),
});
