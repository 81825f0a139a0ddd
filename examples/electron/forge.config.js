// Electron Forge equivalent of the "build" section of package.json (Forge 8: npm install
// --save-dev @electron-forge/cli @electron-forge/maker-zip). One glob, as @electron/asar takes:
// our prebuilds (the .node and the .so files it loads through RUNPATH $ORIGIN), sharp's
// @img packages (its .node and libvips), and every other .node. The AutoUnpackNatives plugin
// alone is not enough: it adds '**/{.**,**}/**/*.node', .node files only (see README.md).
module.exports = {
  packagerConfig: {
    asar: {
      unpack:
        '{**/node_modules/paddle-image-feature/prebuilds/**,**/node_modules/@img/**,**/*.node}',
    },
  },
  // All native modules here are Node-API: @electron/rebuild finds our prebuilt node.napi.node
  // and skips it; limiting it to our package keeps it away from modules whose prebuild names
  // it does not recognise (it would try to compile those against Electron's headers).
  rebuildConfig: {
    onlyModules: ['paddle-image-feature'],
  },
  makers: [{ name: '@electron-forge/maker-zip', platforms: ['linux'] }],
};
