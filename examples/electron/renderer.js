/* global document, window */
const out = document.getElementById('out');

document.getElementById('pick').addEventListener('click', async () => {
  out.textContent = 'Extracting…';
  try {
    const r = await window.pif.pickAndExtract();
    out.textContent = r === null ? 'No image chosen.' : JSON.stringify(r, null, 2);
  } catch (err) {
    out.textContent = String(err);
  }
});
