/* placeholder: replaced by the built dashboard (dashboard-js) at merge */
