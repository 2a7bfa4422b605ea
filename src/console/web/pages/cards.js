// cards page: drawn from the admin API (see console.js for the helpers).
"use strict";
SG.page(function (app) {
  app.append(SG.el("p", {}, SG.t("common.loading")));
});
